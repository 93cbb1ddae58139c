#include "delivery_tracker.hpp"

#include <algorithm>

namespace preflight {

DeliveryTracker::DeliveryTracker(const ReplyClassifier& classifier, TrackerOptions options, Sink sink)
    : classifier_(classifier), options_(options), sink_(std::move(sink)) {}

DeliveryTracker::Message* DeliveryTracker::find(std::string_view queue_id) {
    auto it = open_.find(queue_id);
    return it == open_.end() ? nullptr : &it->second;
}

DeliveryTracker::Message& DeliveryTracker::message(std::string_view queue_id, std::int64_t now) {
    auto it = open_.find(queue_id);
    if (it == open_.end()) it = open_.emplace(std::string(queue_id), Message{}).first;
    it->second.last_seen = now;
    return it->second;
}

namespace {

// Postfix logs a multi-line reply (a milter's smfi_setmlreply) with each CR LF as "??" and the
// next line's "550 5.7.26 " after it: one line of text again, joined by a blank.
void join_logged_lines(std::string& s) {
    if (s.find("??") == std::string::npos) return;
    auto digit = [&](std::size_t i) { return i < s.size() && s[i] >= '0' && s[i] <= '9'; };
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    while (i < s.size()) {
        if (s.compare(i, 2, "??") != 0) {
            out.push_back(s[i++]);
            continue;
        }
        std::size_t end = i + 2;
        if (digit(end) && digit(end + 1) && digit(end + 2) && end + 3 < s.size() &&
            (s[end + 3] == ' ' || s[end + 3] == '-')) {
            end += 4;
            std::size_t e = end;  // an enhanced code "5.7.26 " after it
            if (digit(e) && e + 1 < s.size() && s[e + 1] == '.') {
                e += 2;
                while (digit(e)) ++e;
                if (e < s.size() && s[e] == '.') {
                    ++e;
                    while (digit(e)) ++e;
                    if (e < s.size() && s[e] == ' ') end = e + 1;
                }
            }
        }
        out.push_back(' ');
        i = end;
    }
    s.swap(out);
}

}  // namespace

void DeliveryTracker::emit(Status status, std::string_view queue_id, const Message* msg, std::string_view recipient,
                           std::string_view text, const LogTime& time, std::string_view relay, std::string_view delay,
                           std::string_view dsn, Origin origin) {
    DeliveryRow& r = row_;
    r.time = time;
    r.status = status;
    r.recipient.assign(recipient);
    r.message.assign(remote_reply(text));
    if (status == Status::rejected) join_logged_lines(r.message);
    r.queue_id.assign(queue_id);
    r.relay.assign(relay);
    r.delay.assign(delay);
    r.enhanced.assign(dsn);
    if (msg) {
        r.sender.assign(msg->sender);
        r.message_id.assign(msg->message_id);
    } else {
        r.sender.clear();
        r.message_id.clear();
    }
    if (status == Status::sent) {
        r.category = Category::success;
        r.bounce = Bounce::none;
    } else {
        Classification c = classifier_.classify(r.message, origin, scratch_);
        if (c.error == Classification::Error::none) {
            r.category = c.category;
            r.bounce = c.bounce;
            if (r.enhanced.empty() && c.enhanced) {
                char buf[12];
                r.enhanced.assign(buf, c.enhanced.format(buf));
            }
        } else {
            r.category = Category::other;
            r.bounce = status == Status::bounce     ? Bounce::hard
                       : status == Status::deferred ? Bounce::soft
                                                    : Bounce::none;
        }
        if (status == Status::expired) {
            r.category = Category::message_expired;
            r.bounce = default_bounce(Category::message_expired);
        }
        if (status == Status::bounce && r.bounce == Bounce::none) r.bounce = Bounce::hard;
    }
    sink_(r);
}

void DeliveryTracker::emit_deferred(std::string_view queue_id, const Message& msg, Status status) {
    for (const Deferred& d : msg.deferred)
        emit(status, queue_id, &msg, d.recipient, d.reply, d.time, d.relay, d.delay, d.dsn, Origin::remote);
}

void DeliveryTracker::evict(Map::iterator it) {
    emit_deferred(it->first, it->second, Status::deferred);
    open_.erase(it);
    ++evicted_;
}

void DeliveryTracker::maybe_evict(std::int64_t now) {
    if (open_.size() > options_.max_open) {
        // Drop the least recently seen tenth (at least the excess) in one pass.
        std::vector<std::pair<std::int64_t, const std::string*>> ages;
        ages.reserve(open_.size());
        for (auto& [id, m] : open_) ages.emplace_back(m.last_seen, &id);
        std::size_t n = std::max(open_.size() - options_.max_open, options_.max_open / 10 + 1);
        n = std::min(n, ages.size());
        std::nth_element(ages.begin(), ages.begin() + static_cast<std::ptrdiff_t>(n - 1), ages.end());
        std::vector<std::string> victims;
        victims.reserve(n);
        for (std::size_t i = 0; i < n; ++i) victims.push_back(*ages[i].second);
        for (const auto& id : victims) evict(open_.find(id));
    }
    // Time-based sweep at most once per hour of log time.
    if (swept_ && now - last_sweep_ < 3600) return;  // also when the log goes back in time
    swept_ = true;
    last_sweep_ = now;
    std::int64_t cutoff = now - options_.queue_lifetime;
    for (auto it = open_.begin(); it != open_.end();) {
        auto next = std::next(it);
        if (it->second.last_seen < cutoff) evict(it);
        it = next;
    }
}

void DeliveryTracker::add(const LogEvent& ev) {
    const std::int64_t now = ev.time.instant();
    switch (ev.kind) {
    case EventKind::message_id: {
        Message& m = message(ev.queue_id, now);
        m.message_id.assign(ev.message_id);
        break;
    }
    case EventKind::queued: {
        Message& m = message(ev.queue_id, now);
        m.sender.assign(ev.sender);
        m.queued = true;
        break;
    }
    case EventKind::delivery: {
        Message* m = find(ev.queue_id);
        if (ev.word == DeliveryWord::deferred) {
            if (!m) m = &message(ev.queue_id, now);
            m->last_seen = now;
            auto it = std::find_if(m->deferred.begin(), m->deferred.end(),
                                   [&](const Deferred& d) { return d.recipient == ev.recipient; });
            if (it == m->deferred.end()) {
                m->deferred.emplace_back();
                it = std::prev(m->deferred.end());
                it->recipient.assign(ev.recipient);
            }
            it->reply.assign(ev.text);
            it->relay.assign(ev.relay);
            it->delay.assign(ev.delay);
            it->dsn.assign(ev.dsn);
            it->time = ev.time;
            break;
        }
        if (m) {
            m->last_seen = now;
            std::erase_if(m->deferred, [&](const Deferred& d) { return d.recipient == ev.recipient; });
        }
        Status s = ev.word == DeliveryWord::sent      ? Status::sent
                   : ev.word == DeliveryWord::bounced ? Status::bounce
                                                      : Status::expired;
        emit(s, ev.queue_id, m, ev.recipient, ev.text, ev.time, ev.relay, ev.delay, ev.dsn, Origin::remote);
        break;
    }
    case EventKind::expired: {
        if (Message* m = find(ev.queue_id)) {
            m->last_seen = now;
            if (m->sender.empty()) m->sender.assign(ev.sender);
            for (Deferred& d : m->deferred) d.time = ev.time;  // they end now
            emit_deferred(ev.queue_id, *m, Status::expired);
            m->deferred.clear();
        }
        break;
    }
    case EventKind::removed: {
        auto it = open_.find(ev.queue_id);
        if (it != open_.end()) {
            emit_deferred(it->first, it->second, Status::deferred);
            open_.erase(it);
        }
        break;
    }
    case EventKind::reject: {
        auto it = ev.queue_id.empty() ? open_.end() : open_.find(ev.queue_id);
        Message* m = it == open_.end() ? nullptr : &it->second;
        // Sender and recipient as the reject line gives them.
        Message tmp;
        const Message* from = m;
        if (!m || m->sender != ev.sender) {
            tmp.sender.assign(ev.sender);
            if (m) tmp.message_id = m->message_id;
            from = &tmp;
        }
        emit(Status::rejected, ev.queue_id, from, ev.recipient, ev.text, ev.time, {}, {}, {}, Origin::edge);
        // Refused before qmgr saw it (milter or cleanup at end of message): nothing follows.
        if (m && !m->queued) open_.erase(it);
        break;
    }
    }
    maybe_evict(now);
}

void DeliveryTracker::finish() {
    // In the order the messages were last seen, so that the output does not depend on hashing.
    std::vector<std::pair<std::int64_t, Map::iterator>> order;
    order.reserve(open_.size());
    for (auto it = open_.begin(); it != open_.end(); ++it) order.emplace_back(it->second.last_seen, it);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first < b.first : a.second->first < b.second->first;
    });
    for (auto& [seen, it] : order) emit_deferred(it->first, it->second, Status::deferred);
    open_.clear();
}

}  // namespace preflight
