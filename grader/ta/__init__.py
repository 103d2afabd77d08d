"""A TA's points: manual scores and overrides merged into results, and the CSV files a TA writes."""
