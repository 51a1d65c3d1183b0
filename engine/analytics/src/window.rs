//! A fixed-capacity ring of the most recent values: sized once, never grows.

/// The last `capacity` values pushed, newest first by age.
#[derive(Clone, Debug)]
pub struct Window<T> {
    buf: Box<[T]>,
    head: usize,
    len: usize,
}

impl<T: Copy> Window<T> {
    /// An empty window holding at most `capacity` values (at least one).
    pub fn new(capacity: usize, fill: T) -> Self {
        Self { buf: vec![fill; capacity.max(1)].into_boxed_slice(), head: 0, len: 0 }
    }

    /// Appends `value`, evicting the oldest when full.
    pub fn push(&mut self, value: T) {
        self.head = (self.head + 1) % self.buf.len();
        self.buf[self.head] = value;
        self.len = (self.len + 1).min(self.buf.len());
    }

    /// The value pushed `age` pushes ago (0 = newest).
    pub fn get(&self, age: usize) -> Option<T> {
        (age < self.len).then(|| self.buf[(self.head + self.buf.len() - age) % self.buf.len()])
    }

    /// A mutable reference to the value pushed `age` pushes ago.
    pub fn get_mut(&mut self, age: usize) -> Option<&mut T> {
        let cap = self.buf.len();
        (age < self.len).then(|| &mut self.buf[(self.head + cap - age) % cap])
    }

    /// Values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been pushed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when as many values are held as fit.
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// The capacity fixed at construction.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The values held, newest first.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).filter_map(move |age| self.get(age))
    }

    /// Every slot in storage order (all of them pushed values once the window is full).
    pub fn slots(&self) -> &[T] {
        &self.buf
    }

    /// Bytes of heap this window holds.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_evicts_the_oldest() {
        let mut w = Window::new(3, 0);
        assert!(w.is_empty());
        for v in 1..=5 {
            w.push(v);
        }
        assert!(w.is_full());
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![5, 4, 3]);
        assert_eq!(w.get(3), None);
        *w.get_mut(1).unwrap() = 40;
        assert_eq!(w.get(1), Some(40));
    }
}
