"""Hazards (隐患) and their rectification (整改): from finding to verified fix, with the look-back (回头看)."""
