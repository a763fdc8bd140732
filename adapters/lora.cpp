namespace tuneloop::adapters {}
