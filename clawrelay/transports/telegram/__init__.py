"""The telegram transport: text composition, error meaning, and the Bot API calls."""
