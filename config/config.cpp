namespace tuneloop::config {}
