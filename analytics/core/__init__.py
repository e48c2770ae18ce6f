"""The detection core: plain Python + numpy/pandas/ADTK, no Django imports."""
