#include "ota/w25q.hpp"

namespace ota {

template class BasicW25qFlash<SpiBus>;

}  // namespace ota
