"""What the server's interceptors (interceptor.py, obs/tracing.py) need to know of a grpc.aio method handler
and of a call's end, in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

Behaviour = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]
HandlerFactory = Callable[..., "grpc.RpcMethodHandler[Any, Any]"]  # not subscriptable at run time


def behaviour_and_factory(handler: grpc.RpcMethodHandler[Any, Any]) -> tuple[Any, HandlerFactory]:
    """The handler's behaviour (the servicer method: a `Behaviour`, which the stubs type as the synchronous
    API's) and the grpc function that makes a handler of the same kind (unary or streaming requests and
    responses) around another behaviour."""
    if handler.response_streaming:
        if handler.request_streaming:
            return handler.stream_stream, grpc.stream_stream_rpc_method_handler
        return handler.unary_stream, grpc.unary_stream_rpc_method_handler
    if handler.request_streaming:
        return handler.stream_unary, grpc.stream_unary_rpc_method_handler
    return handler.unary_unary, grpc.unary_unary_rpc_method_handler


def final_code(context: grpc.aio.ServicerContext[Any, Any], cancelled: bool) -> grpc.StatusCode:
    """The status a call ended with: CANCELLED when it was, else the code its handler set, else OK."""
    if cancelled:
        return grpc.StatusCode.CANCELLED
    # code() is None until a handler sets one (abort, set_code), whatever the stubs say: a plain return is OK.
    code: grpc.StatusCode | None = context.code()
    return code or grpc.StatusCode.OK
