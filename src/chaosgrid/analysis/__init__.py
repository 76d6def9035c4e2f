"""Study statistics, computed after the fact from the runs and predictions tables (one module per study)."""
