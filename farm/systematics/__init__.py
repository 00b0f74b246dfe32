"""Systematic universes: definitions → throws (universe sets) → per-event and flux weights."""
