"""clawrelay: a message, a command or a repository from one OpenClaw instance to another."""

__version__ = "0.1.0"
