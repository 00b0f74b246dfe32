"""Pure reweighting kernels: factorised flux universes, per-event knobs, bootstrap weights."""
