"""Media plane: one Pipecat pipeline per live call, Twilio Media Streams over WebSockets."""
