"""Config -> Pipecat service. The one seam where cloud providers plug in."""
