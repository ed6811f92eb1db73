"""Control messages a script expects from recvmsg, compared with what the kernel returned.

A script writes them as packetdrill does, in the msghdr's `msg_control`:
    msg_control=[{cmsg_level=SOL_IP, cmsg_type=IP_RECVERR,
                  cmsg_data={ee_errno=0, ee_origin=SO_EE_ORIGIN_ZEROCOPY, ...}}]
and they are compared as packetdrill compares them, in order, one for one:
- IP_RECVERR / IPV6_RECVERR (the error queue): a `struct sock_extended_err`
  (uapi/linux/errqueue.h), every field; an unwritten one is 0;
- SCM_TIMESTAMPING: a `struct scm_timestamping` of three timespecs; a script gives the
  first as {scm_sec=S, scm_nsec=N} on the script's clock; it must be within the timing
  tolerance of the kernel's, and a zero one is not compared;
- any other (TCP_CM_INQ...): an int.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Callable

from harness.constants import CONSTANTS
from harness.errors import CaseError
from harness.model import Expr

SOL_IP, IP_RECVERR, SOL_IPV6, IPV6_RECVERR = 0, 11, 41, 25
SCM_TIMESTAMPING = 37
EXTENDED_ERR = struct.Struct("=IBBBBII")      # struct sock_extended_err
EE_FIELDS = ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_pad", "ee_info", "ee_data")
TIMESPECS = struct.Struct("=qqqqqq")          # struct scm_timestamping: ts[3] (64-bit)
ROOM = 4096                                   # ancillary buffer handed to recvmsg


def expected_messages(msghdr: Expr, value: Callable[[Expr], Any]) -> list[dict[str, Any]] | None:
    """The control messages a msghdr expression lists (None when it names no msg_control)."""
    fields = dict(msghdr.value) if msghdr.kind == "struct" else {}
    control = fields.get("msg_control")
    if control is None or control.kind == "ellipsis":
        return None
    if control.kind != "array":
        raise CaseError(control.loc, "expected msg_control=[{cmsg_level=..., cmsg_type=..., "
                        "cmsg_data=...}, ...]")
    out = []
    for item in control.value:
        parts = dict(item.value) if item.kind == "struct" else {}
        missing = [k for k in ("cmsg_level", "cmsg_type", "cmsg_data") if k not in parts]
        if missing:
            raise CaseError(item.loc, f"a control message needs {', '.join(missing)} "
                            "(e.g. {cmsg_level=SOL_IP, cmsg_type=IP_RECVERR, cmsg_data={...}})")
        out.append({"level": _number(parts["cmsg_level"], value), "type": _number(parts["cmsg_type"], value),
                    "data": parts["cmsg_data"], "loc": item.loc})
    return out


def _number(expr: Expr, value: Callable[[Expr], Any]) -> int:
    """A level or type: a number, a name, or a -D define naming one (CMSG_LEVEL_IP=SOL_IP)."""
    if expr.kind == "string" and expr.value in CONSTANTS:
        return CONSTANTS[expr.value]
    got = value(expr)
    if not isinstance(got, int):
        raise CaseError(expr.loc, f"unknown constant {got!r} for a control message level or type")
    return got


def compare(expected: list[dict[str, Any]], actual: list[tuple[int, int, bytes]],
            value: Callable[[Expr], Any], realtime_to_case: Callable[[float], float],
            tolerance: float) -> list[str]:
    """How the returned control messages differ from the expected ones (packetdrill's
    wording), empty when they match."""
    for index, (want, (level, type_, data)) in enumerate(zip(expected, actual)):
        if level != want["level"]:
            return [f"Bad level in cmsg {index}: expected={want['level']} actual={level}"]
        if type_ != want["type"]:
            return [f"Bad type in cmsg {index}: expected={want['type']} actual={type_}"]
        problem = _data_problem(index, level, type_, want["data"], data, value,
                                realtime_to_case, tolerance)
        if problem:
            return [problem]
    if len(actual) > len(expected):
        return [f"received more than {len(expected)} cmsgs"]
    if len(actual) < len(expected):
        return [f"received only {len(actual)} cmsgs"]
    return []


def _data_problem(index: int, level: int, type_: int, want: Expr, data: bytes,
                  value: Callable[[Expr], Any], realtime_to_case: Callable[[float], float],
                  tolerance: float) -> str | None:
    if (level, type_) in ((SOL_IP, IP_RECVERR), (SOL_IPV6, IPV6_RECVERR)):
        return _extended_err(index, want, data, value)
    if (level, type_) == (socket.SOL_SOCKET, SCM_TIMESTAMPING):
        return _timestamping(index, want, data, value, realtime_to_case, tolerance)
    expected = value(want)
    if not isinstance(expected, int):
        raise CaseError(want.loc, "expected an int as this control message's data")
    got = int.from_bytes(data[:4].ljust(4, b"\0"), "little", signed=True)
    if got != expected:
        return f"Bad data in cmsg {index}: expected={expected} actual={got}"
    return None


def _struct_fields(want: Expr, allowed: tuple[str, ...], value: Callable[[Expr], Any]) -> dict[str, int]:
    if want.kind != "struct":
        raise CaseError(want.loc, "expected {" + "=..., ".join(allowed[:2]) + "=..., ...}")
    out = {}
    for name, expr in want.value:
        if name not in allowed:
            raise CaseError(expr.loc, f"unknown field {name!r} (expected one of {', '.join(allowed)})")
        out[name] = value(expr)
    return out


def _extended_err(index: int, want: Expr, data: bytes, value: Callable[[Expr], Any]) -> str | None:
    expected = _struct_fields(want, EE_FIELDS, value)
    if len(data) < EXTENDED_ERR.size:
        return f"Bad len in cmsg {index}: {len(data)} bytes, too short for a sock_extended_err"
    got = dict(zip(EE_FIELDS, EXTENDED_ERR.unpack_from(data)))
    for name in EE_FIELDS:
        if got[name] != expected.get(name, 0):
            what = name.removeprefix("ee_")
            return (f"Bad {what} in extended err {index}: expected={expected.get(name, 0)} "
                    f"actual={got[name]}")
    return None


def _timestamping(index: int, want: Expr, data: bytes, value: Callable[[Expr], Any],
                  realtime_to_case: Callable[[float], float], tolerance: float) -> str | None:
    expected = _struct_fields(want, ("scm_sec", "scm_nsec"), value)
    if len(data) < TIMESPECS.size:
        return f"Bad len in cmsg {index}: {len(data)} bytes, too short for a scm_timestamping"
    sec, nsec = expected.get("scm_sec", 0), expected.get("scm_nsec", 0)
    if not sec and not nsec:
        return None
    got_sec, got_nsec = TIMESPECS.unpack_from(data)[:2]
    script_time = sec + nsec / 1e9
    actual = realtime_to_case(got_sec + got_nsec / 1e9)
    if abs(actual - script_time) > tolerance:
        return (f"Bad timestamp 0 in scm_timestamping {index}: expected={script_time:.6f} "
                f"actual={actual:.6f} (script time)")
    return None
