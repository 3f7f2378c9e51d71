"""Accidents and the look-back of their rectification measures (安全生产法 第八十六条第三款)."""
