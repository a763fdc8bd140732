#pragma once
// What waits to be written to one connection (the JSON-RPC socket and TCP port, the MPD
// port): written in order, one async_write at a time, with a cap on the bytes waiting so
// that a peer that never reads cannot grow the daemon's memory. Runs on the io thread.

#include <asio.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace tuneloop::rpc {

template <class Socket>
class WriteQueue {
 public:
  /// `after` runs when a write fails (with its error) and whenever the queue has drained
  /// (with no error).
  WriteQueue(Socket& socket, std::size_t max_pending_bytes, std::function<void(std::error_code)> after)
      : socket_(socket), max_pending_(max_pending_bytes), after_(std::move(after)) {}

  /// Queues `text` and starts writing when nothing is in flight; the write holds
  /// `keep_alive` (the connection that owns this queue). Returns false, queueing nothing,
  /// when the bytes waiting would pass the cap: the caller closes the connection.
  bool push(std::string text, std::shared_ptr<void> keep_alive) {
    if (stopped_) return true;
    if (pending_ + text.size() > max_pending_) return false;
    pending_ += text.size();
    out_.push_back(std::move(text));
    if (out_.size() == 1) write_front(std::move(keep_alive));
    return true;
  }

  /// Drops what waits; a write in flight ends without calling `after`.
  void stop() {
    stopped_ = true;
    out_.clear();
    pending_ = 0;
  }

  bool empty() const noexcept { return out_.empty(); }

 private:
  void write_front(std::shared_ptr<void> keep_alive) {
    asio::async_write(socket_, asio::buffer(out_.front()),
                      [this, keep_alive](std::error_code ec, std::size_t) {
                        if (stopped_) return;
                        if (ec) {
                          after_(ec);
                          return;
                        }
                        pending_ -= out_.front().size();
                        out_.pop_front();
                        if (!out_.empty())
                          write_front(keep_alive);
                        else
                          after_({});
                      });
  }

  Socket& socket_;
  std::size_t max_pending_;
  std::function<void(std::error_code)> after_;
  std::deque<std::string> out_;
  std::size_t pending_ = 0;
  bool stopped_ = false;
};

}  // namespace tuneloop::rpc
