"""Telephony providers: webhooks, media-stream protocols, provider-side call control."""
