"""Client of stopgate, the SMS opt-out compliance service. Generated stubs live in `stopgate.v1`."""
