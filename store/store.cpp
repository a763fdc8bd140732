namespace tuneloop::store {}
