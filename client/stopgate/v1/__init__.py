"""Generated stubs of the stopgate.v1 contracts (`make proto`); do not edit."""
