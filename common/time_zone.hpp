// A time zone of the system's tz database (/usr/share/zoneinfo, TZif files), read once into
// memory so that converting between UTC and local time needs no lock, no TZ environment
// variable and no file access per call. The C library's localtime_r works only in the one
// zone of the TZ variable, which is process-wide and not safe to change while other threads
// run; GCC 12's libstdc++ has no std::chrono::locate_zone.
//
// The transitions of the file's 64-bit part are used. After the last one the last offset
// holds: Debian's tzdata ships "fat" files with transitions up to 2037, and a zone file whose
// rules need the POSIX TZ footer earlier than that is refused when it is loaded.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace preflight {

class TimeZone {
public:
    // "UTC" (built in), or a name under zoneinfo_dir such as "Europe/Berlin". nullopt with why
    // set on an unknown name, a name with ".." or a leading '/', or a file that is not TZif.
    static std::optional<TimeZone> load(std::string_view name, std::string* why = nullptr,
                                        const std::string& zoneinfo_dir = "/usr/share/zoneinfo");
    static TimeZone utc();

    const std::string& name() const { return name_; }
    // Seconds east of UTC at a UTC instant.
    std::int32_t offset_at(std::int64_t utc_s) const;
    // Local wall-clock seconds (as if the local time were UTC) at a UTC instant.
    std::int64_t to_local(std::int64_t utc_s) const { return utc_s + offset_at(utc_s); }
    // The first UTC instant whose local time is at or after local_s: the instant itself when
    // it exists once, the earlier one when the clock was set back over it, and the end of the
    // gap when the clock jumped over it (a midnight skipped by DST starts the day at 01:00).
    std::int64_t first_instant_at(std::int64_t local_s) const;
    // The zone's abbreviation at an instant ("UTC", "CET", "CEST"), for replies.
    std::string abbreviation_at(std::int64_t utc_s) const;

private:
    struct Type {
        std::int32_t offset = 0;
        std::string abbreviation;
    };
    std::string name_;
    std::vector<std::int64_t> transitions_;      // UTC seconds, ascending
    std::vector<std::uint8_t> transition_type_;  // index into types_, per transition
    std::vector<Type> types_;                    // types_[0]: before the first transition
    std::size_t type_index_at(std::int64_t utc_s) const;
};

}  // namespace preflight
