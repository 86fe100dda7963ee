// core::Registry<T>: a thread-safe, insertion-ordered name→T map, as core/go's Registry.
// Replacing a key keeps its position. seal() forbids new keys; lock() forbids every write.
// each() runs fn on a snapshot, outside the lock, so fn may call back into the registry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/result.hpp"

namespace core {

template <class T>
class Registry {
  public:
    explicit Registry(std::string name = "registry") : name_(std::move(name)) {}

    // Adds or replaces. Errors: sealed (new key), locked (any write), empty name.
    [[nodiscard]] Result<void> set(const std::string& key, T value) {
        if (key.empty()) return fail(E(name_ + ".set", "empty name"));
        std::unique_lock lk(mu_);
        if (locked_) return fail(E(name_ + ".set", "registry is locked: " + key));
        auto it = items_.find(key);
        if (it != items_.end()) {
            it->second.value = std::move(value);
            return {};
        }
        if (sealed_) return fail(E(name_ + ".set", "registry is sealed: " + key));
        const std::uint64_t seq = next_seq_++;
        order_.emplace(seq, key);
        items_.emplace(key, Item{std::move(value), seq});
        return {};
    }

    // The value under key; Error "<name>.get: not found: <key>" when absent.
    [[nodiscard]] Result<T> get(const std::string& key) const {
        std::shared_lock lk(mu_);
        auto it = items_.find(key);
        if (it == items_.end()) return fail(E(name_ + ".get", "not found: " + key));
        return it->second.value;
    }

    bool has(const std::string& key) const {
        std::shared_lock lk(mu_);
        return items_.count(key) != 0;
    }

    // Removes key. Errors: not found, locked.
    [[nodiscard]] Result<void> remove(const std::string& key) {
        std::unique_lock lk(mu_);
        if (locked_) return fail(E(name_ + ".remove", "registry is locked: " + key));
        auto it = items_.find(key);
        if (it == items_.end()) return fail(E(name_ + ".remove", "not found: " + key));
        order_.erase(it->second.seq);
        items_.erase(it);
        return {};
    }

    // Removes every key for which pred(key, value) is true; returns how many. Ignores lock().
    template <class Pred>
    std::size_t remove_if(Pred pred) {
        std::unique_lock lk(mu_);
        std::size_t n = 0;
        for (auto it = order_.begin(); it != order_.end();) {
            auto item = items_.find(it->second);
            if (pred(std::as_const(it->second), std::as_const(item->second.value))) {
                items_.erase(item);
                it = order_.erase(it);
                ++n;
            } else {
                ++it;
            }
        }
        return n;
    }

    // Names in insertion order.
    std::vector<std::string> names() const {
        std::shared_lock lk(mu_);
        std::vector<std::string> out;
        out.reserve(order_.size());
        for (const auto& [seq, key] : order_) out.push_back(key);
        return out;
    }

    // Calls fn(name, value) in insertion order on a snapshot taken under the lock.
    void each(const std::function<void(const std::string&, const T&)>& fn) const {
        std::vector<std::pair<std::string, T>> snap;
        {
            std::shared_lock lk(mu_);
            snap.reserve(order_.size());
            for (const auto& [seq, key] : order_) snap.emplace_back(key, items_.at(key).value);
        }
        for (const auto& [k, v] : snap) fn(k, v);
    }

    std::size_t size() const {
        std::shared_lock lk(mu_);
        return items_.size();
    }

    void seal() {
        std::unique_lock lk(mu_);
        sealed_ = true;
    }
    void lock() {
        std::unique_lock lk(mu_);
        locked_ = true;
    }
    bool sealed() const {
        std::shared_lock lk(mu_);
        return sealed_;
    }
    bool locked() const {
        std::shared_lock lk(mu_);
        return locked_;
    }

  private:
    struct Item {
        T value;
        std::uint64_t seq;
    };
    std::string name_;
    mutable std::shared_mutex mu_;
    std::unordered_map<std::string, Item> items_;
    std::map<std::uint64_t, std::string> order_;
    std::uint64_t next_seq_ = 0;
    bool sealed_ = false;
    bool locked_ = false;
};

}  // namespace core
