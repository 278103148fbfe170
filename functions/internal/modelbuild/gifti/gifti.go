// Package gifti reads the GIfTI surface files of a FreeSurfer template (fsaverage5 in
// ../shared/data/templates): the vertex positions and triangles of a mesh. It is written here
// because no maintained Go GIfTI reader exists; it reads what the standard allows for those
// arrays (ASCII, Base64Binary and GZipBase64Binary encodings, either byte order, float32 and int32
// data, row-major order) and refuses the rest with a clear error.
//
// Reference: GIfTI Surface Data Format, version 1.0 (https://www.nitrc.org/projects/gifti/).
package gifti

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Mesh is a triangulated surface.
type Mesh struct {
	// Points are the vertex positions (mm).
	Points [][3]float32
	// Triangles index Points, counter-clockwise seen from outside.
	Triangles [][3]int32
}

type dataArray struct {
	Intent   string `xml:"Intent,attr"`
	DataType string `xml:"DataType,attr"`
	Order    string `xml:"ArrayIndexingOrder,attr"`
	Dims     int    `xml:"Dimensionality,attr"`
	Dim0     int    `xml:"Dim0,attr"`
	Dim1     int    `xml:"Dim1,attr"`
	Encoding string `xml:"Encoding,attr"`
	Endian   string `xml:"Endian,attr"`
	External string `xml:"ExternalFileName,attr"`
	Data     string `xml:"Data"`
}

// ReadFile reads a .gii or .gii.gz mesh.
func ReadFile(path string) (*Mesh, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gifti: %s: %w", path, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("gifti: %s: %w", path, err)
		}
	}
	m, err := Read(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return m, nil
}

// Read parses a GIfTI document holding a point set and a triangle array.
func Read(doc []byte) (*Mesh, error) {
	var g struct {
		Arrays []dataArray `xml:"DataArray"`
	}
	dec := xml.NewDecoder(bytes.NewReader(doc))
	// GIfTI files name a DTD; the decoder needs no network for it, and strict mode stays on.
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("gifti: not a GIfTI document: %w", err)
	}
	m := &Mesh{}
	for _, a := range g.Arrays {
		switch a.Intent {
		case "NIFTI_INTENT_POINTSET":
			vals, err := a.floats()
			if err != nil {
				return nil, err
			}
			m.Points = make([][3]float32, a.Dim0)
			for i := range m.Points {
				copy(m.Points[i][:], vals[3*i:3*i+3])
			}
		case "NIFTI_INTENT_TRIANGLE":
			vals, err := a.ints()
			if err != nil {
				return nil, err
			}
			m.Triangles = make([][3]int32, a.Dim0)
			for i := range m.Triangles {
				copy(m.Triangles[i][:], vals[3*i:3*i+3])
			}
		}
	}
	if len(m.Points) == 0 || len(m.Triangles) == 0 {
		return nil, fmt.Errorf("gifti: a mesh needs a NIFTI_INTENT_POINTSET and a NIFTI_INTENT_TRIANGLE array")
	}
	for _, t := range m.Triangles {
		for _, v := range t {
			if v < 0 || int(v) >= len(m.Points) {
				return nil, fmt.Errorf("gifti: triangle vertex %d out of range (%d points)", v, len(m.Points))
			}
		}
	}
	return m, nil
}

func (a dataArray) check(dataType string) error {
	switch {
	case a.DataType != dataType:
		return fmt.Errorf("gifti: %s array of %s, want %s", a.Intent, a.DataType, dataType)
	case a.Dims != 2 || a.Dim1 != 3 || a.Dim0 <= 0:
		return fmt.Errorf("gifti: %s array is %d-D %d×%d, want N×3", a.Intent, a.Dims, a.Dim0, a.Dim1)
	case a.Order != "" && a.Order != "RowMajorOrder":
		return fmt.Errorf("gifti: %s array in %s, only RowMajorOrder is read", a.Intent, a.Order)
	case a.External != "":
		return fmt.Errorf("gifti: %s array is in an external file, which is not read", a.Intent)
	}
	return nil
}

// raw decodes the array's binary data; ASCII data is returned as nil with its fields.
func (a dataArray) raw() ([]byte, []string, error) {
	data := strings.TrimSpace(a.Data)
	switch a.Encoding {
	case "ASCII":
		return nil, strings.Fields(data), nil
	case "Base64Binary", "GZipBase64Binary":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(data), ""))
		if err != nil {
			return nil, nil, fmt.Errorf("gifti: %s array: bad base64: %w", a.Intent, err)
		}
		if a.Encoding == "Base64Binary" {
			return b, nil, nil
		}
		// GIfTI's "GZip" is zlib (RFC 1950), as gifticlib and nibabel write it.
		zr, err := zlib.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, nil, fmt.Errorf("gifti: %s array: %w", a.Intent, err)
		}
		defer zr.Close()
		if b, err = io.ReadAll(zr); err != nil {
			return nil, nil, fmt.Errorf("gifti: %s array: %w", a.Intent, err)
		}
		return b, nil, nil
	}
	return nil, nil, fmt.Errorf("gifti: %s array: encoding %q is not read", a.Intent, a.Encoding)
}

func (a dataArray) order() binary.ByteOrder {
	if a.Endian == "BigEndian" {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (a dataArray) floats() ([]float32, error) {
	if err := a.check("NIFTI_TYPE_FLOAT32"); err != nil {
		return nil, err
	}
	n := a.Dim0 * 3
	b, fields, err := a.raw()
	if err != nil {
		return nil, err
	}
	out := make([]float32, n)
	if fields != nil {
		if len(fields) != n {
			return nil, fmt.Errorf("gifti: %s array has %d values, want %d", a.Intent, len(fields), n)
		}
		for i, f := range fields {
			v, err := strconv.ParseFloat(f, 32)
			if err != nil {
				return nil, fmt.Errorf("gifti: %s array: %w", a.Intent, err)
			}
			out[i] = float32(v)
		}
		return out, nil
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("gifti: %s array has %d bytes, want %d", a.Intent, len(b), 4*n)
	}
	o := a.order()
	for i := range out {
		out[i] = math.Float32frombits(o.Uint32(b[4*i:]))
	}
	return out, nil
}

func (a dataArray) ints() ([]int32, error) {
	if err := a.check("NIFTI_TYPE_INT32"); err != nil {
		return nil, err
	}
	n := a.Dim0 * 3
	b, fields, err := a.raw()
	if err != nil {
		return nil, err
	}
	out := make([]int32, n)
	if fields != nil {
		if len(fields) != n {
			return nil, fmt.Errorf("gifti: %s array has %d values, want %d", a.Intent, len(fields), n)
		}
		for i, f := range fields {
			v, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("gifti: %s array: %w", a.Intent, err)
			}
			out[i] = int32(v)
		}
		return out, nil
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("gifti: %s array has %d bytes, want %d", a.Intent, len(b), 4*n)
	}
	o := a.order()
	for i := range out {
		out[i] = int32(o.Uint32(b[4*i:]))
	}
	return out, nil
}
