"""The asv suite (see README.md here); asv imports it from the working tree."""
