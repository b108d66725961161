"""Switchboard: a multi-tenant platform for AI phone agents, built on Pipecat."""
