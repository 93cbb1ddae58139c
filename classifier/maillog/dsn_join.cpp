#include "dsn_join.hpp"

#include "ascii.hpp"

#include <algorithm>

namespace preflight {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);
constexpr std::int64_t kSkew = 60;

void make_key(std::string& key, std::string_view kind, std::string_view id, std::string_view rcpt_lower) {
    key.assign(kind);
    key.push_back('\0');
    key.append(id);
    key.push_back('\0');
    key.append(rcpt_lower);
}

}  // namespace

std::string_view queued_as(std::string_view reply) {
    std::size_t at = reply.find("queued as ");
    if (at == std::string_view::npos) return {};
    std::size_t start = at + 10, end = start;
    while (end < reply.size() && ((reply[end] >= '0' && reply[end] <= '9') ||
                                  (reply[end] >= 'A' && reply[end] <= 'Z') || (reply[end] >= 'a' && reply[end] <= 'z')))
        ++end;
    return reply.substr(start, end - start);
}

DsnJoin::DsnJoin(std::vector<DsnRecord> records, std::int64_t window)
    : records_(std::move(records)), used_(records_.size(), false), window_(window) {
    for (std::size_t i = 0; i < records_.size(); ++i) {
        const DsnRecord& r = records_[i];
        if (r.status != Status::bounce && r.status != Status::expired) {
            used_[i] = true;  // never joins
            continue;
        }
        std::string rcpt = ascii::to_lower(r.recipient);
        if (!r.queue_id.empty()) {
            make_key(key_, "q", r.queue_id, rcpt);
            by_key_[key_].push_back(i);
        }
        if (!r.message_id.empty()) {
            make_key(key_, "m", r.message_id, rcpt);
            by_key_[key_].push_back(i);
        }
        if (!rcpt.empty()) by_recipient_[rcpt].push_back(i);
    }
    for (auto& [rcpt, list] : by_recipient_)
        std::stable_sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) {
            return records_[a].time.instant() < records_[b].time.instant();
        });
}

std::size_t DsnJoin::lookup(std::string_view kind, std::string_view id, std::string_view rcpt) {
    if (id.empty()) return kNone;
    for (std::string_view r : {rcpt, std::string_view{}}) {
        make_key(key_, kind, id, r);
        auto it = by_key_.find(key_);
        if (it == by_key_.end()) continue;
        for (std::size_t i : it->second)
            if (!used_[i]) return i;
    }
    return kNone;
}

std::size_t DsnJoin::take(std::size_t index) {
    used_[index] = true;
    ++used_count_;
    return index;
}

bool DsnJoin::apply(DeliveryRow& row, const ReplyClassifier& classifier, std::string& scratch) {
    if (row.status != Status::sent || records_.empty()) return false;
    std::string rcpt = ascii::to_lower(row.recipient);
    std::size_t hit = lookup("q", row.queue_id, rcpt);
    if (hit == kNone) hit = lookup("q", queued_as(row.message), rcpt);
    if (hit == kNone) hit = lookup("m", row.message_id, rcpt);
    if (hit == kNone && !rcpt.empty()) {
        auto it = by_recipient_.find(rcpt);
        if (it != by_recipient_.end()) {
            const std::int64_t t = row.time.instant();
            for (std::size_t i : it->second) {
                std::int64_t dt = records_[i].time.instant() - t;
                if (dt > window_) break;
                if (!used_[i] && dt >= -kSkew) {
                    hit = i;
                    break;
                }
            }
        }
    }
    if (hit == kNone) return false;
    const DsnRecord& r = records_[take(hit)];
    row.status = r.status;
    row.message = r.reason;
    Classification c = classifier.classify(r.reason, Origin::remote, scratch);
    row.enhanced.clear();
    if (c.error == Classification::Error::none) {
        row.category = c.category;
        row.bounce = c.bounce == Bounce::none ? Bounce::hard : c.bounce;
        if (c.enhanced) {
            char buf[12];
            row.enhanced.assign(buf, c.enhanced.format(buf));
        }
    } else {
        row.category = Category::other;
        row.bounce = Bounce::hard;
    }
    if (r.status == Status::expired) {
        row.category = Category::message_expired;
        row.bounce = default_bounce(Category::message_expired);
    }
    return true;
}

}  // namespace preflight
