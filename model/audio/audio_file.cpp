namespace tuneloop::audio {}
