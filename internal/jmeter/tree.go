package jmeter

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// xmlNode is one XML element of a .jmx file, kept whole: JMeter's
// SaveService writes a test element as <class testclass=... testname=...
// enabled=...> holding typed properties (stringProp, boolProp, intProp,
// longProp, elementProp, collectionProp), each named by its name attribute.
type xmlNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []xmlNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n *xmlNode) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// prop returns the text of the property called name among n's children
// ("" when absent); ok says whether it is there.
func (n *xmlNode) prop(name string) (string, bool) {
	if p := n.child(name); p != nil {
		return strings.TrimSpace(p.Text), true
	}
	return "", false
}

// child returns the property element called name, or nil.
func (n *xmlNode) child(name string) *xmlNode {
	for i := range n.Nodes {
		if v, _ := n.Nodes[i].attr("name"); v == name {
			return &n.Nodes[i]
		}
	}
	return nil
}

// node is a test element with the elements of the hashTree that follows it.
type node struct {
	el       *xmlNode
	class    string // the testclass attribute, else the tag
	name     string // the testname attribute
	disabled bool   // enabled="false"
	kids     []*node
}

func (n *node) prop(name string) string { v, _ := n.el.prop(name); return v }

func (n *node) boolProp(name string) bool { return n.prop(name) == "true" }

// readTree parses a .jmx document into the element tree under its root
// hashTree. JMeter writes a tree as a <hashTree> listing each element
// followed by the <hashTree> of its children (HashTree serialisation of
// org.apache.jorphan.collections.HashTree).
func readTree(r io.Reader) ([]*node, error) {
	var root xmlNode
	if err := xml.NewDecoder(r).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no XML element in it")
		}
		return nil, fmt.Errorf("not XML: %w", err)
	}
	if root.XMLName.Local != "jmeterTestPlan" {
		return nil, fmt.Errorf("root element is <%s>, want <jmeterTestPlan>", root.XMLName.Local)
	}
	for i := range root.Nodes {
		if root.Nodes[i].XMLName.Local == "hashTree" {
			return treeOf(&root.Nodes[i]), nil
		}
	}
	return nil, errors.New("<jmeterTestPlan> holds no <hashTree>")
}

// treeOf turns the children of a hashTree into nodes, each given the
// hashTree right after it as its children.
func treeOf(h *xmlNode) []*node {
	var out []*node
	for i := range h.Nodes {
		el := &h.Nodes[i]
		if el.XMLName.Local == "hashTree" {
			if len(out) > 0 && out[len(out)-1].kids == nil {
				out[len(out)-1].kids = treeOf(el)
			}
			continue
		}
		n := &node{el: el, class: el.XMLName.Local}
		if c, ok := el.attr("testclass"); ok && c != "" {
			n.class = c
		}
		n.name, _ = el.attr("testname")
		if e, ok := el.attr("enabled"); ok && e == "false" {
			n.disabled = true
		}
		out = append(out, n)
	}
	return out
}
