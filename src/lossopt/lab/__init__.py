"""The lab: experiments return data, the report consumes it, the CLI wires them."""
