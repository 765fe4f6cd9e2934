"""Killable worker processes: the pool that bounds every call, its slots, the service owning one."""
