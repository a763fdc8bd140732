namespace tuneloop::player {}
