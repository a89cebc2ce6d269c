"""Text messages: phone numbers checked with `phonenumbers`, sent through an HTTP gateway or written to files."""
