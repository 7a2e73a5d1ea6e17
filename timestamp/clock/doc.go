// Package clock holds clock-discipline checks for the TSA beyond those of
// package timestamp (chronyc, static): Kernel reads the kernel's NTP state
// (adjtimex), which any NTP daemon that disciplines the clock (chronyd,
// ntpd, systemd-timesyncd) keeps up to date; NewCachedKernel is the TSA's
// cached check over it, with the configuration's defaults. Each checker
// implements timestamp.ClockChecker.
package clock
