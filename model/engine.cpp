namespace tuneloop::model {}
