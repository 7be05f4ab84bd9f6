"""Experiments: assignment, statistics, bandits and off-policy evaluation."""
