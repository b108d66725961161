"""What both planes use and neither owns."""
