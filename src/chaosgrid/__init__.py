"""chaosgrid: reproducible grids of many small trainings."""

__version__ = "0.1.0"
