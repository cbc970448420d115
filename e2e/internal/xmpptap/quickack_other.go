//go:build !linux

package xmpptap

import "net"

// quickAck is Linux's TCP_QUICKACK; elsewhere the delayed ACK stays.
func quickAck(net.Conn) {}
