"""gRPC servicers, one module per service: validation and mapping only."""
