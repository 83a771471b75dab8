"""Alarm responder: endpoint health alarms -> an operator notice with context (+ rollback when allowed)."""
