"""The sandbox Canvas and Aspen, served on 127.0.0.1."""
