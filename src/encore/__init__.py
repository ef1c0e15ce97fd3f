"""encore: music classification and listener-appeal scoring from audio and feedback."""

__version__ = "0.1.0"
