package delivery

import (
	"bytes"

	"github.com/dgraph-io/badger/v4"
)

// getter reads one key: a Badger transaction, or a walk.
type getter interface {
	Get(key []byte) (*badger.Item, error)
}

// walkSteps is how far a walk steps forward before it seeks instead.
const walkSteps = 8

// walk reads keys asked for mostly in increasing order, as the records
// and events behind a batch of due entries are when sorted by id. It
// keeps an iterator per key prefix and steps it forward, where a point
// read searches every level of the tree again: a quarter of the cost per
// key. A key behind the iterator, or far ahead, costs a seek, about what
// a point read costs. An item is valid until the next Get of its prefix.
type walk struct {
	txn *badger.Txn
	its map[byte]*badger.Iterator
}

func newWalk(txn *badger.Txn) *walk { return &walk{txn: txn, its: map[byte]*badger.Iterator{}} }

// Get returns the item at key, or badger.ErrKeyNotFound.
func (w *walk) Get(key []byte) (*badger.Item, error) {
	it := w.its[key[0]]
	switch {
	case it == nil:
		it = w.txn.NewIterator(badger.IteratorOptions{Prefix: key[:1]})
		w.its[key[0]] = it
		it.Seek(key)
	case !it.Valid() || bytes.Compare(it.Item().Key(), key) > 0:
		it.Seek(key)
	default:
		for n := 0; it.Valid() && bytes.Compare(it.Item().Key(), key) < 0; n++ {
			if n == walkSteps {
				it.Seek(key)
				break
			}
			it.Next()
		}
	}
	if !it.Valid() || !bytes.Equal(it.Item().Key(), key) {
		return nil, badger.ErrKeyNotFound
	}
	return it.Item(), nil
}

func (w *walk) close() {
	for _, it := range w.its {
		it.Close()
	}
}
