package omemoxmpp

import (
	"encoding/xml"
	"fmt"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// DeviceListXML is the payload of a device list item for l: <list/> for
// OMEMO 0.3, <devices/> with labels for OMEMO 2. Every device list we
// publish is written here (through omemo.DeviceList's MarshalXML).
func DeviceListXML(l *omemo.DeviceList) (xml.TokenReader, error) {
	r, err := marshalReader(l)
	if err != nil {
		return nil, fmt.Errorf("failed to marshal %s device list: %w", l.Version, err)
	}
	return r, nil
}
