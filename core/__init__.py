"""The kernel every app may use."""
