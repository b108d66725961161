"""Shared plumbing for the control plane's slices: database, errors, auth, pagination."""
