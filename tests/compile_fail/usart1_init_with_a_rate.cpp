// Compiled by the usart1_init_takes_no_rate tests: USART1 runs at the rate the image was built
// for (OTA_USART1_BAUD, named in its app info) and no other. A rate of the application's own
// would, once the image is installed, make it talk at a rate the adapter or modem does not: a
// device reached again only by a reset into its bootloader.
#include "stm32f1/usart1.hpp"

void start_the_link() {
#ifdef GOOD_CALL
  stm32f1::usart1::init(72'000'000);
#else
  stm32f1::usart1::init(72'000'000, 9600);
#endif
}
