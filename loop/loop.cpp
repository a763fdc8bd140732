namespace tuneloop::loop {}
