"""The training side: strategy, models, schedules, callbacks, K-fold, TTA and the run report."""
