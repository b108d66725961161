"""Control plane: tenants, agents, phone numbers, knowledge uploads, call timelines."""
