"""stopgate server: gRPC service keeping SMS traffic compliant with opt-outs."""
