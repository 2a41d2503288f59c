"""Process identity (pid + start time, safe against pid reuse) and killing a job's whole process tree."""

from __future__ import annotations

import os
import signal

import psutil

STOP_GRACE_S = 5.0  # SIGTERM first so logs flush; SIGKILL whatever is left after this


def process_identity(pid: int) -> dict:
    """pid and start time: together they name a process even after its pid is reused."""
    return {"pid": pid, "create_time": psutil.Process(pid).create_time()}


def find_process(identity: dict | None) -> psutil.Process | None:
    """The live (not zombie) process an identity names, or None."""
    if not identity or not identity.get("pid"):
        return None
    try:
        proc = psutil.Process(int(identity["pid"]))
        if identity.get("create_time") and abs(proc.create_time() - identity["create_time"]) > 1.0:
            return None  # the pid now belongs to another process
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def kill_process_tree(identity: dict, grace_s: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM a job's process group and every descendant, SIGKILL survivors; returns the pids seen.

    The group is signalled only while its leader is verified (or gone: Linux never hands out a pid
    that is still some group's id), so a reused pid can never lead us to another program's group."""
    pid = int(identity["pid"])
    leader = find_process(identity)
    procs = []
    if leader is not None:
        try:
            procs = [leader] + leader.children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
    elif psutil.pid_exists(pid):
        return []  # the pid belongs to an unrelated process now: nothing of ours is left to kill
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)  # the child started a new session, so its pid is its group id
        except (ProcessLookupError, PermissionError):
            pass
        for proc in _alive(procs):  # descendants that left the group
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace_s if sig == signal.SIGTERM else 5.0)
        if not _alive(alive):
            break
    return [p.pid for p in procs]
