"""Hangs while being imported."""
import time

time.sleep(3600)
